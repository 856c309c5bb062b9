"""The demo: a store server and a kiosk on simulators (rig), the simulator keys, the loopback
network, and the scripted screenshot tour."""
