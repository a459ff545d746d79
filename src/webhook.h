/*-------------------------------------------------------------------------
 *
 * webhook.h
 *	  Polar webhooks: verified, then applied exactly once, in order.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/webhook.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RS_WEBHOOK_H
#define RS_WEBHOOK_H

/* setup, from _PG_init: defines roastr_state.webhook_secret_file */
extern void rs_webhook_init(void);

#endif							/* RS_WEBHOOK_H */
