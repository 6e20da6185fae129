package email

import (
	"errors"
	"fmt"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/platform"
)

// loopMessage is a record on the group's loop topic; exactly one field is set.
type loopMessage struct {
	// Payment re-keys a payment by its order id, carrying the payment's event time (records
	// written by a processor carry their produce time, not the original one).
	Payment *loopPayment `json:"payment,omitempty" cbor:"1,keyasint,omitempty"`
	// Hold, keyed by a customer key, registers an order that waits for that customer.
	Hold *holdRequest `json:"hold,omitempty" cbor:"2,keyasint,omitempty"`
	// Customer, keyed by an order id, hands a waiting order the customer it waited for, so the
	// order does not depend on the lookup table having caught up yet.
	Customer *domain.Customer `json:"customer,omitempty" cbor:"3,keyasint,omitempty"`
}

type loopPayment struct {
	Payment   domain.Payment `json:"payment" cbor:"1,keyasint,omitempty"`
	EventTime stamp          `json:"eventTime" cbor:"2,keyasint"`
}

type holdRequest struct {
	OrderID    string `json:"orderId" cbor:"1,keyasint,omitempty"`
	CustomerID int64  `json:"customerId" cbor:"2,keyasint,omitempty"`
	Since      stamp  `json:"since" cbor:"3,keyasint"`
}

// paymentRecords decodes payments and refuses those without an order id: such a payment can
// never join, so it goes to the dead-letter topic as evidence instead of being dropped.
type paymentRecords struct {
	codec *platform.AvroCodec[domain.Payment]
}

func (r paymentRecords) Unmarshal(b []byte) (domain.Payment, error) {
	p, err := r.codec.Unmarshal(b)
	if err != nil {
		return p, err
	}
	if p.OrderID == "" {
		return p, &platform.DecodeError{Kind: platform.ErrInvalidValue, Record: "Payment", SchemaID: -1,
			Cause: errors.New("payment has no order id")}
	}
	return p, nil
}

// loopCodec encodes and decodes loop records, strictly: fields this service never writes mean
// the record is not ours.
var loopCodec = platform.StateCodec[loopMessage]{Strict: true}

// Validate refuses loop records this service did not write (exactly one kind is set in each),
// so platform.Decode dead-letters them instead of acting on them.
func (m loopMessage) Validate() error {
	set := 0
	for _, present := range []bool{m.Payment != nil, m.Hold != nil, m.Customer != nil} {
		if present {
			set++
		}
	}
	if set != 1 {
		return fmt.Errorf("email loop record: %d of payment, hold, customer set, want exactly one", set)
	}
	return nil
}
