"""`atwh emulator`: a Webhooks API on this machine that really delivers."""
