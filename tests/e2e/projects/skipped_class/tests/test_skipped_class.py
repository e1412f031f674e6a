import unittest

@unittest.skipUnless(False, "windows only")
class TzWinTest(unittest.TestCase):
    def test_a(self):
        pass
    def test_b(self):
        pass

class Plain(unittest.TestCase):
    def test_c(self):
        pass
