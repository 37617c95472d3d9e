"""ament_python package `perception` (Python package `perception_nodes`)."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "perception"
NODES = ("sim_cell", "camera_ingest", "pick_client", "segmentation", "grasp_regions",
         "grasp_capture", "anomaly", "depth")

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=["perception_nodes", "perception_nodes.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
        (f"share/{PACKAGE}/models", glob("models/*")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="perception engineering",
    maintainer_email="engineering@perception.invalid",
    description="Perception for robotic bin-picking cells",
    license="Apache-2.0",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [f"{n} = perception_nodes.nodes.{n}:main" for n in NODES]
        + ["perception = perception_nodes.cli:main"],
    },
)
