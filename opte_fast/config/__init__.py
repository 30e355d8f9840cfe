"""Configuration of `opte-fast run`: values.py (value kinds), options.py (the table of tunables),
loader.py (the TOML file and flag values into a checked Config), flags.py (the click flags)."""
