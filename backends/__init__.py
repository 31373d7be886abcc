"""Backends: how emconsole reaches servers (WinRM) and the built-in lab it can reach instead."""
