"""Every test of this plugin runs isolated: a fresh plugin registry, an empty weights cache and
none of the user's SEGCORE_* settings (fixture ``segcore_isolation`` of ``segcore.testing``)."""

pytest_plugins = ["segcore.testing"]
