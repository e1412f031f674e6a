import os

# read when the conftest is imported: [tool.tach] env must be set before that
FLAG_AT_IMPORT = os.environ.get("CONFIGURED_FLAG")
