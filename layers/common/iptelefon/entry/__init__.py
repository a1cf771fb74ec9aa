"""What a handler uses: the resolver and the one error -> HTTP map (`api`), and the dependencies built once per
execution environment and handed to the use cases (`dependencies`).
"""
