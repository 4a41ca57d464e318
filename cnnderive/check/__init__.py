"""`cnnderive check`: is a hand-computed gradient right, and if not, which mistake gives it."""
