from . import test_deal_sale
from . import test_security_attacks_sale
