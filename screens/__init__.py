"""The console's screens (Textual): the app, its screens and the Grid they share.

Frame pacing: Textual draws at most one frame every 1/TEXTUAL_FPS seconds (its default is 60), and a
key typed within that time of the last frame waits for the next slot, up to 16.7 ms on top of its own
work: half of an idle key's latency when keys come back to back (``bench/ui_load.py``: idle cursor
moves p50 17 -> 8 ms, p95 34 -> 16-18 ms at 120). Server updates are paced by the app itself
(``UPDATE_INTERVAL``, ``STATUS_INTERVAL``), so the higher cap adds frames only where keys need them.
Set here, before any screen imports Textual (which reads it once); an operator's TEXTUAL_FPS wins.
"""

import os

os.environ.setdefault("TEXTUAL_FPS", "120")
