"""The packages of the one import root `sector_credit`, which five top-level folders make up;
everything else about the build is in pyproject.toml. Each folder's subpackages are found,
not listed, so a new one (as server/db once was) cannot be left out of a plain install."""

from setuptools import find_packages, setup

FOLDERS = {
    "sector_credit": "protos/sector_credit",
    "sector_credit.server": "server",
    "sector_credit.plugins": "plugins",
    "sector_credit.scorecards": "scorecards",
    "sector_credit.clients": "clients",
}

setup(
    package_dir=FOLDERS,
    packages=[
        f"{package}.{sub}" if sub else package
        for package, folder in FOLDERS.items()
        for sub in ["", *find_packages(folder)]
    ],
)
