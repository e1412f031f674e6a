import unittest


class TestCaseStyle(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.shared = [1, 2, 3]

    def setUp(self):
        self.local = list(self.shared)

    def tearDown(self):
        self.local.clear()

    def test_sum(self):
        self.assertEqual(sum(self.local), 6)

    def test_fails(self):
        self.assertEqual(len(self.local), 4)

    @unittest.skip("unittest skip")
    def test_skipped(self):
        pass

    @unittest.expectedFailure
    def test_expected_failure(self):
        self.assertTrue(False)

    def test_subtests(self):
        for i in range(3):
            with self.subTest(i=i):
                self.assertLess(i, 2)

    def test_subtests_pass(self):
        for i in range(3):
            with self.subTest(i=i):
                self.assertLess(i, 5)
