from . import test_deal_invoicing
from . import test_security_attacks_account
