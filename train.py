"""Train, evaluate and export an experiment: python train.py --config experiments/quickstart.yaml"""

import sys

from mobilenets.cli import train_main

if __name__ == "__main__":
    sys.exit(train_main())
