"""Deployment helpers: run exported models with OpenVINO on factory CPUs."""
