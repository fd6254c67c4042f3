"""`atwh serve`: the receiver that answers like the vendor's endpoint, its inbox and live view."""
