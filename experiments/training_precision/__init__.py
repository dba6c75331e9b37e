"""Training-step time in float32 and under bf16 autocast (behind the demo's ``--precision auto``)."""
