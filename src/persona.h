/*-------------------------------------------------------------------------
 *
 * persona.h
 *	  Persona text: stored only as ciphertext under a per-user data key.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/persona.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RS_PERSONA_H
#define RS_PERSONA_H

#include "crypto.h"
#include "user_state.h"

extern RsDataKey *rs_user_dek(const pg_uuid_t *user, const RsUserState *st,
							  bool create);
extern text *rs_persona_plaintext(const pg_uuid_t *user,
								  const RsUserState *st, RsDataKey *dek,
								  RsFieldId f);
extern uint32 rs_persona_apply(const pg_uuid_t *user, const RsUserState *st,
							   uint32 mask, Datum *vals, bool *nulls,
							   RsDataKey *dek);

#endif							/* RS_PERSONA_H */
