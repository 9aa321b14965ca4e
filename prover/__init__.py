"""Constraint systems, circuits, Groth16 setup and proving, worker pools."""
