"""Train, evaluate and export an experiment: python train.py --config experiments/quickstart.yaml"""

import sys

from mobilenets.cli import program

if __name__ == "__main__":
    sys.exit(program(["train", *sys.argv[1:]]))
