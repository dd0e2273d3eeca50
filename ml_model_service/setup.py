"""ament_python package: ML model service and vision service nodes."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "ml_model_service"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    package_data={PACKAGE: ["models/*", "photos/*"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.xml") + glob("config/*.rviz")),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="ml_model_service developers",
    maintainer_email="dev@example.com",
    description="ML model service and vision service for ROS 2",
    license="Apache-2.0",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            f"model_service = {PACKAGE}.ros.model_service_node:main",
            f"vision_service = {PACKAGE}.ros.vision_node:main",
            f"ml_model_cli = {PACKAGE}.cli:main",
        ],
    },
)
