from . import test_deal_shipping
