"""The demo: ``main`` (``run_demo``) puts together the rig (a store server and a kiosk on
simulators), the simulator keys and window (``keys``), and the scripted screenshot tour
(``tour``); ``network`` is the store server's side (through ``storeserver.embedded`` only) and
the relay that cuts it off. Imports go one way: main imports rig, keys and tour; keys and tour
import rig; rig imports network; nothing imports main (tests/kiosk/test_import_cycles.py).
Kept empty: importing ``kiosk.demo.network`` must not bring in Kivy through the tour."""
