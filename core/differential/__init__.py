"""Differential test of the emulator against the real collector: the same input through both.

``run`` drives real collectors and the emulator side by side (it needs the runtime's process
helpers and load simulator); ``compare`` holds the comparison logic, testable without a
collector. See docs/real-collector.md.
"""
