from . import test_deal_delivery
