"""Training: typed run config, the loop with RepSR's BN switch, checkpoints/resume, DDP.

``repsr train CONFIG`` is the command; :func:`repsr.train.loop.train` the Python entry point.
"""
