"""Shapes.

>>> from shapes.square import Square
>>> Square(2).area()
4
"""
