"""Root conftest: every test of the repository (core, plugins, integration) runs isolated.

``segcore.testing`` is a pytest plugin: each test gets a fresh plugin registry, an empty
weights cache and none of the user's ``SEGCORE_*`` settings (fixture ``segcore_isolation``).
"""

pytest_plugins = ["segcore.testing"]
