// Package domain holds the records of the order-management ecosystem as plain Go values: the
// types of SPEC.md's Avro schemas, their enums, and the rules that say whether a value is
// well-formed. It knows nothing about Kafka or Avro; platform's codecs translate.
package domain

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// OrderState is where an order is in its life cycle.
type OrderState string

// The order states of the Avro enum OrderState, in schema order.
const (
	OrderCreated   OrderState = "CREATED"
	OrderValidated OrderState = "VALIDATED"
	OrderFailed    OrderState = "FAILED"
	OrderShipped   OrderState = "SHIPPED"
)

// OrderStates lists the symbols of the Avro enum, in schema order.
var OrderStates = []OrderState{OrderCreated, OrderValidated, OrderFailed, OrderShipped}

// Product is what an order buys.
type Product string

// The products of the Avro enum Product, in schema order.
const (
	Jumpers    Product = "JUMPERS"
	Underpants Product = "UNDERPANTS"
	Stockings  Product = "STOCKINGS"
)

// Products lists the symbols of the Avro enum, in schema order.
var Products = []Product{Jumpers, Underpants, Stockings}

// CheckType names one of the three validations an order goes through.
type CheckType string

// The check types of the Avro enum OrderValidationType, in schema order.
const (
	InventoryCheck    CheckType = "INVENTORY_CHECK"
	FraudCheck        CheckType = "FRAUD_CHECK"
	OrderDetailsCheck CheckType = "ORDER_DETAILS_CHECK"
)

// CheckTypes lists the symbols of the Avro enum, in schema order.
var CheckTypes = []CheckType{InventoryCheck, FraudCheck, OrderDetailsCheck}

// ValidationResult is the verdict of one check.
type ValidationResult string

// The results of the Avro enum OrderValidationResult, in schema order.
const (
	Pass  ValidationResult = "PASS"
	Fail  ValidationResult = "FAIL"
	Error ValidationResult = "ERROR"
)

// ValidationResults lists the symbols of the Avro enum, in schema order.
var ValidationResults = []ValidationResult{Pass, Fail, Error}

// Order is the record of the `orders` topic and the body of the REST API.
type Order struct {
	ID         string     `json:"id" cbor:"1,keyasint,omitempty"`
	CustomerID int64      `json:"customerId" cbor:"2,keyasint,omitempty"`
	State      OrderState `json:"state" cbor:"3,keyasint,omitempty"`
	Product    Product    `json:"product" cbor:"4,keyasint,omitempty"`
	Quantity   int32      `json:"quantity" cbor:"5,keyasint,omitempty"`
	Price      float64    `json:"price" cbor:"6,keyasint"`
}

// SameContent reports whether two versions of an order carry the same order: everything but
// the state, which moves on (CREATED, then VALIDATED or FAILED). SPEC's integrity rule "first
// write wins per id" compares orders this way.
func SameContent(a, b Order) bool {
	// A NaN price (which Avro carries) equals itself; -0 equals 0, as == has it (JSON
	// clients may send either for the same order).
	samePrice := a.Price == b.Price || (math.IsNaN(a.Price) && math.IsNaN(b.Price))
	a.State, b.State, a.Price, b.Price = "", "", 0, 0
	return a == b && samePrice
}

// Fingerprint identifies an order's content (what SameContent compares) in a few bytes, for
// services that must remember which content of an id came first without keeping the order.
func (o Order) Fingerprint() string {
	price := o.Price
	switch {
	case price == 0:
		price = 0 // -0 is the same order (SameContent)
	case math.IsNaN(price):
		price = math.NaN()
	}
	h := sha256.New()
	fmt.Fprintf(h, "%q|%d|%q|%d|%x", o.ID, o.CustomerID, o.Product, o.Quantity, math.Float64bits(price))
	return base64.RawStdEncoding.EncodeToString(h.Sum(nil)[:12])
}

// OrderValue pairs an order with the fraud service's running total of its session.
type OrderValue struct {
	Order Order   `json:"order" cbor:"1,keyasint,omitempty"`
	Value float64 `json:"value" cbor:"2,keyasint"`
}

// OrderValidation is one check's verdict on one order (topic `order-validations`).
type OrderValidation struct {
	OrderID          string           `json:"orderId"`
	CheckType        CheckType        `json:"checkType"`
	ValidationResult ValidationResult `json:"validationResult"`
}

// Payment is the record of the `payments` topic.
type Payment struct {
	ID      string  `json:"id" cbor:"1,keyasint,omitempty"`
	OrderID string  `json:"orderId" cbor:"2,keyasint,omitempty"`
	Ccy     string  `json:"ccy" cbor:"3,keyasint,omitempty"`
	Amount  float64 `json:"amount" cbor:"4,keyasint"`
}

// DefaultCustomerLevel is the schema default of Customer.level.
const DefaultCustomerLevel = "bronze"

// Customer is the record of the `customers` table.
type Customer struct {
	ID        int64  `json:"id" cbor:"1,keyasint,omitempty"`
	FirstName string `json:"firstName" cbor:"2,keyasint,omitempty"`
	LastName  string `json:"lastName" cbor:"3,keyasint,omitempty"`
	Email     string `json:"email" cbor:"4,keyasint,omitempty"`
	Address   string `json:"address" cbor:"5,keyasint,omitempty"`
	Level     string `json:"level" cbor:"6,keyasint,omitempty"`
}

// OrderEnriched is an order with its customer's level, routed to the topic of that level.
type OrderEnriched struct {
	ID            string `json:"id" cbor:"1,keyasint,omitempty"`
	CustomerID    int64  `json:"customerId" cbor:"2,keyasint,omitempty"`
	CustomerLevel string `json:"customerLevel" cbor:"3,keyasint,omitempty"`
}

// FieldError says which field of a value is wrong and why; HTTP maps it to 400.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return fmt.Sprintf("field %q: %s", e.Field, e.Reason) }

// Valid reports whether s is a symbol of the enum.
func (s OrderState) Valid() bool { return contains(OrderStates, s) }

// Valid reports whether p is a symbol of the enum.
func (p Product) Valid() bool { return contains(Products, p) }

// Valid reports whether c is a symbol of the enum.
func (c CheckType) Valid() bool { return contains(CheckTypes, c) }

// Valid reports whether r is a symbol of the enum.
func (r ValidationResult) Valid() bool { return contains(ValidationResults, r) }

func contains[T comparable](set []T, v T) bool {
	for _, s := range set {
		if s == v {
			return true
		}
	}
	return false
}

// Validate checks that the order can be represented in the Avro schema: an id, and enum
// fields holding known symbols. Business rules (negative quantity and the like) are the
// validators' job, not a reason to refuse the record.
func (o Order) Validate() error {
	switch {
	case o.ID == "":
		return &FieldError{Field: "id", Reason: "is required"}
	case !o.State.Valid():
		return &FieldError{Field: "state", Reason: fmt.Sprintf("unknown state %q (want one of %v)", o.State, OrderStates)}
	case !o.Product.Valid():
		return &FieldError{Field: "product", Reason: fmt.Sprintf("unknown product %q (want one of %v)", o.Product, Products)}
	}
	return nil
}

// CheckKey refuses a record key other than the order's id: `orders` is keyed by order id,
// and every service keeps an order's state under the key while acting on the id.
func (o Order) CheckKey(key string) error {
	if key != o.ID {
		return fmt.Errorf("record key %s is not the order's id %s", clip(key), clip(o.ID))
	}
	return nil
}

// clip quotes s for an error message, at most its first 64 bytes: errors end up in logs and
// dead-letter headers, and the strings come from whoever wrote the record.
func clip(s string) string {
	if len(s) <= 64 {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("%s… (%d bytes)", strconv.Quote(strings.ToValidUTF8(s[:64], "")), len(s))
}

// CheckKey refuses a record key other than the verdict's order id (order-validations is keyed
// by order id).
func (v OrderValidation) CheckKey(key string) error {
	if key != v.OrderID {
		return fmt.Errorf("record key %s is not the verdict's order id %s", clip(key), clip(v.OrderID))
	}
	return nil
}

// Validate checks the enum fields of a validation record.
func (v OrderValidation) Validate() error {
	switch {
	case v.OrderID == "":
		return &FieldError{Field: "orderId", Reason: "is required"}
	case !v.CheckType.Valid():
		return &FieldError{Field: "checkType", Reason: fmt.Sprintf("unknown check type %q", v.CheckType)}
	case !v.ValidationResult.Valid():
		return &FieldError{Field: "validationResult", Reason: fmt.Sprintf("unknown result %q", v.ValidationResult)}
	}
	return nil
}

// String renders the order as JSON, for logs and tools.
func (o Order) String() string {
	b, _ := json.Marshal(o)
	return string(b)
}
