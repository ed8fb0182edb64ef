//! Names of field-less enums as text and back, written once per enum.
//!
//! [`text_enum!`] takes a table of `Variant => "name"` pairs and generates
//! `ALL` (every variant, in table order), `as_str`, `Display` (the name)
//! and, when given an error type, `FromStr`. Parsing is ASCII
//! case-insensitive and accepts the name or any of its aliases
//! (`Ipv4 => "ipv4" | "4"`); a string that matches none is returned in the
//! error, a tuple struct around the `String`, whose message the module
//! defining the enum writes. Names are written in lower case.
//!
//! ```ignore
//! text_enum! {
//!     /// The lower-case name used in configs.
//!     Protocol {
//!         Icmp => "icmp",
//!         Udp => "udp",
//!     }
//!     parse_error: InvalidProtocol
//! }
//! ```

/// Generates `ALL`, `as_str`, `Display` and optionally `FromStr` for a
/// field-less enum from one table of names (see the module documentation).
macro_rules! text_enum {
    (
        $(#[$doc:meta])*
        $name:ident {
            $( $variant:ident => $text:literal $(| $alias:literal)* ),+ $(,)?
        }
        parse_error: $err:ident
    ) => {
        $crate::text_enum::text_enum! {
            $(#[$doc])*
            $name { $( $variant => $text ),+ }
        }

        impl ::std::str::FromStr for $name {
            type Err = $err;

            fn from_str(s: &str) -> ::std::result::Result<Self, Self::Err> {
                match s.to_ascii_lowercase().as_str() {
                    $( $text $(| $alias)* => Ok(Self::$variant), )+
                    _ => Err($err(s.to_string())),
                }
            }
        }
    };
    (
        $(#[$doc:meta])*
        $name:ident {
            $( $variant:ident => $text:literal ),+ $(,)?
        }
    ) => {
        impl $name {
            /// Every variant, in a fixed order (that of its names' table).
            pub const ALL: [Self; [$( $text ),+].len()] = [$( Self::$variant ),+];

            $(#[$doc])*
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $text, )+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use text_enum;

#[cfg(test)]
mod tests {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Shape {
        Round,
        Square,
        FlatTop,
    }

    #[derive(Debug, PartialEq, Eq)]
    struct InvalidShape(String);

    text_enum! {
        /// The name.
        Shape {
            Round => "round" | "o",
            Square => "square",
            FlatTop => "flat_top",
        }
        parse_error: InvalidShape
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Bare {
        One,
    }

    text_enum! {
        Bare { One => "one" }
    }

    #[test]
    fn names_round_trip_in_table_order() {
        assert_eq!(Shape::ALL, [Shape::Round, Shape::Square, Shape::FlatTop]);
        for shape in Shape::ALL {
            assert_eq!(shape.as_str().parse::<Shape>(), Ok(shape));
            assert_eq!(shape.to_string(), shape.as_str());
        }
        assert_eq!(Bare::ALL, [Bare::One]);
        assert_eq!(Bare::One.to_string(), "one");
    }

    #[test]
    fn parsing_ignores_ascii_case_and_accepts_aliases() {
        assert_eq!("FLAT_TOP".parse::<Shape>(), Ok(Shape::FlatTop));
        assert_eq!("O".parse::<Shape>(), Ok(Shape::Round));
        assert_eq!(Shape::Round.as_str(), "round");
        assert_eq!(
            "triangle".parse::<Shape>(),
            Err(InvalidShape("triangle".to_string()))
        );
        assert_eq!("".parse::<Shape>(), Err(InvalidShape(String::new())));
    }
}
