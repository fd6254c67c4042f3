"""atwh: the Allthings webhooks command line."""

__version__ = "0.1.0"
