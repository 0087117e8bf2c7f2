import sys

from mobilenets.cli import program

sys.exit(program())
