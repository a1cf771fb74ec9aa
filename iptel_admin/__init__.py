"""Admin CLI (`iptel`): projects, employees, tokens, against the local stack or a deployed stage."""
