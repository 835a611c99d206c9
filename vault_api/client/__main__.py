import sys

from vault_api.client.cli import main

sys.exit(main())
