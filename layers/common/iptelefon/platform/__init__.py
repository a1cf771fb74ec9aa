"""The Lambda platform every room may use: settings read from the environment, logging and metrics, the invocation's
time budget.
"""
