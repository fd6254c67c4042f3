"""Testing the endpoint a user builds: sending it realistic signed events (`atwh trigger`)
and grading how it answers (`atwh check`)."""
