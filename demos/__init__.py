"""The demo corpus (documents about rearag) and example configurations."""
