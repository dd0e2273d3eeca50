"""ament_python package: the development package of ml_model_service (tests' harness, benchmark, demo,
robustness checks)."""

from setuptools import find_packages, setup

PACKAGE = "ml_model_service_dev"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(),
    package_data={PACKAGE: ["exporters/*.py"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="ml_model_service developers",
    maintainer_email="dev@example.com",
    description="Development package of ml_model_service: test harness, benchmark, demo, robustness checks",
    license="Apache-2.0",
)
