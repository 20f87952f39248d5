from . import test_deal_delivery
from . import test_security_attacks_stock
