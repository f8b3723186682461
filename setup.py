"""Package layout that pyproject.toml alone cannot say.

``twin`` and its subpackages come from ``src/``; the HTTP service in the
repository's ``api/`` folder installs as ``twin_api`` (``from twin_api import
create_app``), so the project never installs a top-level package named ``api``.
Everything else is declared in pyproject.toml.
"""

from setuptools import find_packages, setup

setup(
    package_dir={"": "src", "twin_api": "api"},
    packages=[*find_packages("src"), "twin_api", "twin_api.routers"],
    # The one-map page, built from web/ by scripts/setup.sh (not committed).
    package_data={"twin_api": ["static/*", "static/**/*"]},
)
