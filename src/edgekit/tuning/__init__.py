"""``edgekit tune``: find the fastest configuration that is still correct on this device, and prove it.

(Being built: see the modules of this package.)
"""
