"""Software tokens faithful enough that real clients drive them. Public,
importable test utilities: tests pass them in; nothing is monkeypatched."""
