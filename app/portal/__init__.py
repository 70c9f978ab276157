"""The customer portal: one channel's endpoints and deliveries, opened by an expiring link."""
