from datetime import UTC, datetime

from odoo.tests import BaseCase, tagged
from odoo.tools import mute_logger

from odoo.addons.deal_stages.tools import handoff as handoff_tools


@tagged("post_install", "-at_install")
class TestDealHandoffTools(BaseCase):
    """What each answer means, and when the next attempt comes."""

    def test_classify_answers(self):
        kinds = {
            status: handoff_tools.classify(status, '{"external_ref": "DOC-7"}').kind
            for status in (200, 201, 202, 409, 400, 401, 403, 404, 422, 408, 429, 500, 502, 503)
        }
        self.assertEqual(
            kinds,
            {
                200: "acknowledged",
                201: "acknowledged",
                202: "acknowledged",
                409: "acknowledged",
                400: "failed",
                401: "failed",
                403: "failed",
                404: "failed",
                422: "failed",
                408: "retry",
                429: "retry",
                500: "retry",
                502: "retry",
                503: "retry",
            },
        )
        self.assertEqual(handoff_tools.classify(200, "OK").kind, "sent")
        # redirects are not followed (signature and extra headers): a person acts
        for status in (301, 302, 307, 308, 410):
            self.assertEqual(handoff_tools.classify(status, "").kind, "failed")
        self.assertEqual(handoff_tools.classify(202, "{}").kind, "sent")
        self.assertEqual(handoff_tools.classify(200, '{"number": 12}').external_ref, "12")
        outcome = handoff_tools.classify(503, "", {"Retry-After": "120"})
        self.assertEqual(outcome.retry_after, 120)

    def test_backoff(self):
        class Fixed:
            @staticmethod
            def uniform(low, high):
                return 1.0

        delays = handoff_tools.DEFAULT_RETRY_DELAYS
        waits = [handoff_tools.retry_delay(n, delays, rng=Fixed) for n in range(1, 9)]
        self.assertEqual(waits, [60, 300, 900, 3600, 21600, 86400, 86400, 86400])
        # jitter stays within 20 %
        for __ in range(50):
            self.assertTrue(48 <= handoff_tools.retry_delay(1, delays) <= 72)
        # Retry-After wins when it asks for longer
        self.assertEqual(handoff_tools.retry_delay(1, delays, retry_after=600, rng=Fixed), 600)
        self.assertEqual(handoff_tools.retry_delay(3, delays, retry_after=10, rng=Fixed), 900)
        self.assertEqual(handoff_tools.parse_delays("1m, 5m, 1h, 1d"), (60, 300, 3600, 86400))
        with self.assertRaises(ValueError):
            handoff_tools.parse_delays("soon")
        self.assertEqual(
            handoff_tools.parse_retry_after(
                "Wed, 21 Oct 2015 07:28:00 GMT",
                now=datetime(2015, 10, 21, 7, 27, tzinfo=UTC),
            ),
            60,
        )

    def test_signature_matches_the_specification(self):
        # the example of the Standard Webhooks specification
        secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        body = b'{"test": 2432232314}'
        signature = handoff_tools.sign([secret], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
        self.assertEqual(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        two = handoff_tools.sign([secret, handoff_tools.new_secret()], "msg", 1, body)
        self.assertEqual(len(two.split(" ")), 2)

    def test_deliver_never_raises(self):
        # a header the HTTP client cannot encode: a failed outcome, not an
        # exception that would stop the cron's batch; its value is not quoted
        delivery = handoff_tools.Delivery(
            handoff_id=1,
            url="http://127.0.0.1:9/handoff",
            key="k",
            body=b"{}",
            secrets=(handoff_tools.new_secret(),),
            headers={"X-Customer": "Иван"},
            timeout=1,
        )
        with mute_logger("odoo.addons.deal_stages.tools.handoff"):
            outcome = handoff_tools.deliver(delivery)
        self.assertEqual(outcome.kind, handoff_tools.OUTCOME_FAILED)
        self.assertNotIn("Иван", outcome.error)
        delivery.headers = {"Authorization": " Basic c2VjcmV0"}
        outcome = handoff_tools.deliver(delivery)
        self.assertEqual(outcome.kind, handoff_tools.OUTCOME_FAILED)
        self.assertNotIn("c2VjcmV0", outcome.error)
        with self.assertRaises(handoff_tools.HeaderError):
            handoff_tools.check_headers({"Authorization": "Basic c2VjcmV0\n"})
        handoff_tools.check_headers({"Authorization": "Basic dGVzdDp0ZXN0", "X-Empty": ""})
