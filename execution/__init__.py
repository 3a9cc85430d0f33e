"""Running model-written code: the sandbox, the program it runs by path, and assert parsing for tests."""
