import sys

from shapes.kind import only_in_a_subprocess

print(only_in_a_subprocess(len(sys.argv) > 1))
