import math


def area(shape, *sizes):
    if shape == "square":
        (side,) = sizes
        return side * side
    if shape == "rect":
        width, height = sizes
        return width * height
    if shape == "circle":
        (radius,) = sizes
        return math.pi * radius**2
    raise ValueError(f"unknown shape {shape!r}")


def perimeter(shape, *sizes):  # reached by no test
    if shape == "square":
        return 4 * sizes[0]
    return 2 * sum(sizes)
