"""Install the PTQAT plugin as the importable package ``ptqat`` (source in projects/ptqat)."""
from setuptools import find_packages, setup

setup(
    name='ptqat',
    version='0.1.0',
    description='PTQAT (arXiv 2508.10557): partial quantization-aware training for '
                'camera 3D perception, as an MMDetection3D 1.x plugin',
    long_description=open('README.md', encoding='utf-8').read() if __import__('os').path.exists('README.md') else '',
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.8',
    package_dir={'': 'projects'},
    packages=find_packages('projects', include=['ptqat', 'ptqat.*']),
    install_requires=[],  # the OpenMMLab stack is installed by tools/setup_env.sh
)
