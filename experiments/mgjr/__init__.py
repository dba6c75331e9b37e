"""MGJR on NEU-CLS: the student's size budget and accuracy under noise and held-out corruptions, over seeds."""
