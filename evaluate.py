"""Score a model: python evaluate.py --config FILE --model runs/x/model.keras (or a .tflite)"""

import sys

from mobilenets.cli import program

if __name__ == "__main__":
    sys.exit(program(["evaluate", *sys.argv[1:]]))
