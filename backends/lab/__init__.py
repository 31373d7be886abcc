"""The lab: an emulated Exchange organisation behind a real WS-Management endpoint on loopback."""
